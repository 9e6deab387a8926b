"""Pure core: decisions and formats with no I/O and no implicit clock (layer 1 of docs/design)."""
