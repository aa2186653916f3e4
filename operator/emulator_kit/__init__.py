"""What both registry emulators (pai_emulator, tfy_emulator) share and neither registry defines:
fault injection, the request journal and per-operation token buckets. It imports nothing of the
operator nor of either emulator (import-linter contract `independent-emulators`)."""
