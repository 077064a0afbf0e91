"""Notifications: alerts to people and programs (mail, Slack, Teams, Discord, webhooks, SNS,
Lambda, local commands), routed, grouped, de-duplicated, throttled, silenced and retried from a
durable outbox. Configuration reference: docs/notify.md.

- messages.py: an alert (or a group, or a digest) rendered in English or Japanese;
- channels/: one module per channel type, registered in `CHANNELS`;
- config.py: the YAML configuration, with file:line in every error;
- router.py: which channels, grouping keys, silences, throttle slots (pure);
- outbox.py: the SQLite store in `<data_dir>/notify.db`;
- dispatcher.py: `Dispatcher(config, data_dir)`: `submit(alert)`, sender threads, `test_send`.
"""
