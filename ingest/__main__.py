import sys

from rag_app.cli.ingest_command import main

if __name__ == "__main__":
    sys.exit(main())
