"""OpenADR 2.0b dispatch of plans to VENs, and measurement of delivered response."""

import warnings

# openleadr signs with signxml 4.5, whose type hints name DSA keys; cryptography 51
# warns when they are looked up, on every start of the service, though no DSA key is
# ever used (OpenADR 2.0b certificates are RSA or ECC, and dispatch.signing takes no
# other).
warnings.filterwarnings("ignore", "DSA is deprecated", module="signxml")
