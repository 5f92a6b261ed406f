"""The test suite: folders mirror lib/ (keys/, upstreams/), plus hardening/, terraform/ and support/."""
