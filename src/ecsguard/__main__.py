from ecsguard.cli.main import main

main()
