from headrace.cli import main

if __name__ == "__main__":  # extraction workers re-import the main module: never run the CLI twice
    main()
