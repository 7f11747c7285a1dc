"""The curators' workbench (`monalia serve`): a Starlette application (`app`), its pages
(`pages/`), the login and session rules (`security`), and its model over the catalog
(`workbench`)."""
