"""gemini-kb adapters: the Slack app, the console, the CLI and the on-demand checks."""
