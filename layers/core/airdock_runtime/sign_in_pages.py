"""The pages a browser sees on the web front's sign-in paths: the page a web login URL opens (it
hands the token from the URL fragment over by POST), the page of a script's login, and the error
page of a refused login."""
from __future__ import annotations

import html

SSO_PATH = "/aws_mwaa/aws-console-sso"


SSO_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<title>Signing in to Apache Airflow</title></head>
<body style="font-family: sans-serif; margin: 3em">
<p id="message">Signing in to Apache Airflow&hellip;</p>
<form id="login" method="post" action="__ACTION__">
<input type="hidden" name="token" id="token"></form>
<script>
(function () {
  // The token travels in the URL fragment, which the browser never sends: hand it over by POST,
  // and drop it from the address bar and history first.
  var token = decodeURIComponent((window.location.hash || "").replace(/^#/, ""));
  history.replaceState(null, "", window.location.pathname + window.location.search);
  if (!token) {
    document.getElementById("message").textContent =
      "This sign-in link carries no token. Create a new one with CreateWebLoginToken.";
    return;
  }
  document.getElementById("token").value = token;
  document.getElementById("login").submit();
})();
</script>
<noscript>Signing in needs JavaScript.</noscript>
</body></html>
"""


def sso_page(base: str) -> bytes:
    # Posted to under the environment's prefix: with path routing the host root is not the
    # environment (nor any environment) on the load balancer.
    return SSO_PAGE.replace("__ACTION__", html.escape(base + SSO_PATH)).encode()


def error_page(title: str, detail: str) -> bytes:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"</head><body style=\"font-family: sans-serif; margin: 3em\"><h1>{html.escape(title)}</h1>"
            f"<p>{html.escape(detail)}</p><p>Create a new login link with CreateWebLoginToken "
            f"(for example from the Airdock console) and open it within 60 seconds.</p></body></html>").encode()


def signed_in_page(location: str, airflow_identity: str, role: str) -> bytes:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signed in</title></head>"
            f"<body style=\"font-family: sans-serif; margin: 3em\"><p>Signed in to Apache Airflow as "
            f"{html.escape(airflow_identity)} ({html.escape(role)}).</p><p><a href=\"{html.escape(location)}\">"
            f"Open the Airflow UI</a></p></body></html>").encode()
