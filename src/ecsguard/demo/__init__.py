"""The emulated AWS account: a moto server on 127.0.0.1 and the estate seeded into it."""
