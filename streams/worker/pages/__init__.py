"""The worklist pages for people (/ui/): sign-in through the OpenID Connect provider, the
figures of the establishments in the person's scope, each figure's units, a CSV download.

    config      SUNES_SESSION_SECRET, SUNES_OIDC_CLIENT_ID/SECRET, SUNES_PUBLIC_URL
    session     the cookies: sealed (encrypted, authenticated) with the workers' shared secret
    oidc        discovery, authorization code + PKCE, token exchange, refresh, sign-out
    forwarding  which worker owns a FINESS (the partition assignment), and asking it
    figures     the rows and unit counts of the establishments a principal may see
    render      the French HTML (Jinja2, autoescaped, inline CSS, no external asset)
    base        what every page shares: who asks (cookie or bearer), error pages, headers
    views       the figures and worklist pages; signin: signing in and out
"""
