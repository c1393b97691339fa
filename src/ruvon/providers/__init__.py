"""Provider contracts (Protocols). Implementations live in :mod:`ruvon.implementations`."""
