"""Messages to beneficiaries in their language: templates per kind and language, edited by
staff, rendered with checked placeholders, measured in SMS segments."""
