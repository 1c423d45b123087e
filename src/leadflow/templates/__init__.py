"""Follow-up emails: the predefined localized catalog, the sandboxed renderer for merchant
templates, composing the MIME message, and the signed link tokens in it."""
