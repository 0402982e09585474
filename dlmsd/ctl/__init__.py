"""``dlmsctl``: field tools for DLMS/COSEM meters (issue 15)."""
