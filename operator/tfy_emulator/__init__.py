"""An emulator of TrueFoundry's model-version REST API (README.md), independent of pai_operator and
of pai_emulator."""
