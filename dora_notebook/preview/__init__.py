"""Preview payloads: normalised, made JSON-safe, rendered as MIME (pure, no widgets)."""
