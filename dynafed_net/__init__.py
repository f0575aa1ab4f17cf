"""Outgoing connections, shared by the functions' runtime and the client.

``trust``: which certificate authorities outgoing https trusts (certifi plus
the site's bundle / hashed ``X509_CERT_DIR``). ``pinned_http``: a session that
connects to the address the URL policy (``dynafed_contract.urlpolicy``)
checked. ``hangup``: shut a connection down once a cancel event is set (the
client's ndjson stream, the copy function's push PUT). One copy for both
sides; it imports only the contract.
"""
