# A newcomer's machine for the newcomer check (tests/container/test_newcomer.py): stock Debian 12
# with Debian's python3, pipx from apt and an ordinary user account. No uv and no project here:
# the check installs uv the way the README says (`pipx install uv`), puts a clean export of the
# commit under test in the user's home and runs the README's two commands there.
#
#   docker build -f tests/container/newcomer.Dockerfile -t botdock-newcomer tests/container

ARG PYTHON_VERSION=3.12

# Only for certificate authorities that the machine building this adds to its base images (on
# a network whose TLS to PyPI is inspected: that proxy's CA, so pip and uv can verify it). The
# official python image adds none: there this copies an empty directory and changes nothing.
FROM python:${PYTHON_VERSION}-slim AS local-ca

FROM debian:bookworm

COPY --from=local-ca /usr/local/share/ca-certificates/ /usr/local/share/ca-certificates/

# Whatever Debian 12 ships, unpinned: that is what a newcomer gets. pipx's recommends are its
# HTML documentation (mkdocs and JavaScript libraries), left out to keep the image small.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates pipx \
    && rm -rf /var/lib/apt/lists/* \
    && update-ca-certificates \
    && useradd --uid 1000 --create-home --shell /bin/bash newcomer

# The first account a Debian installer creates (uid 1000), as numeric so Docker needs no lookup.
USER 1000
WORKDIR /home/newcomer
CMD ["sleep", "infinity"]
