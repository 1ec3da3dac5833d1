# Shared set-up for scripts/test and scripts/demo. Source it from the repository root.
# The Airflow versions the project is tested on: the newest Airflow 3 first, then the 2.11 floor.
AIRFLOW_TARGETS=("3.3.2" "2.11.2")
PYTHON_VERSION=${PYTHON_VERSION:-3.11}
UV_VERSION=0.13.9   # the installer itself is pinned too

# ensure_uv: put the pinned uv on PATH (in .venvs/uv, never in the system Python).
ensure_uv() {
    if [ "$(uv --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
        if [ ! -x .venvs/uv/bin/uv ] || [ "$(.venvs/uv/bin/uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
            python3 -m venv .venvs/uv >&2
            .venvs/uv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" >&2
        fi
        export PATH="$PWD/.venvs/uv/bin:$PATH"
    fi
}

# ensure_venv AIRFLOW_VERSION [GROUP...]: create .venvs/airflow-VERSION (or -demo without groups) with
# the provider, the dependency groups named (test, lint, dev) and the Airflow version, every version
# taken from constraints/airflow-VERSION.txt; prints the venv's path.
ensure_venv() {
    local version=$1; shift
    local venv=".venvs/airflow-$version" groups=() group
    local packages=(-e ".[redis]" "apache-airflow[celery,postgres]==$version")
    if [ $# -eq 0 ]; then   # the demo: the provider and Airflow alone
        venv="$venv-demo"
        packages=(-e . "apache-airflow==$version")
    fi
    for group in "$@"; do groups+=(--group "$group"); done
    ensure_uv
    if [ ! -x "$venv/bin/python" ]; then
        uv venv --quiet --python "$PYTHON_VERSION" "$venv" >&2
    fi
    uv pip install --quiet --python "$venv/bin/python" --constraints "constraints/airflow-$version.txt" \
        "${packages[@]}" "${groups[@]}" >&2
    echo "$venv"
}

# install_debian PACKAGE: install a Debian package (apt-get update first if the lists are stale).
install_debian() {
    local package=$1 sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "Installing Debian package $package (needed by the tests)..." >&2
    $sudo apt-get install -y -qq "$package" >/dev/null 2>&1 || {
        $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq "$package" >/dev/null
    }
}

# ensure_debian COMMAND PACKAGE: install a Debian package for a test server or browser if missing.
ensure_debian() {
    command -v "$1" >/dev/null 2>&1 || install_debian "$2"
}

# ensure_postgres_server: PostgreSQL's server binaries (the client alone may already be installed).
ensure_postgres_server() {
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || install_debian postgresql
}
