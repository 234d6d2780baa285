"""OpenADR 2.0b dispatch of plans to VENs, and measurement of delivered response."""
