"""``python -m audited_openai``: the command line."""

from audited_openai.cli import main

main()
