"""The local development stack: every gcal-jobs process plus the Google emulator, wired up."""
