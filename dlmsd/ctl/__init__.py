"""``dlmsctl``: field tools (decode frames, discover a meter, probe its settings)."""
