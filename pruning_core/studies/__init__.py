"""One module per notebook: sizes per profile, the protocol, seeds and result tables."""
