from ecsguard.cli.main import main

# guarded: a spawned child process (detection) imports this module again under another name
if __name__ == "__main__":
    main()
