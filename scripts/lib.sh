# Shared set-up for scripts/test and scripts/demo. Source it from the repository root.
# The Airflow versions the project is tested on: the newest Airflow 3 first, then the 2.11 floor.
AIRFLOW_TARGETS=("3.3.2" "2.11.2")
PYTHON_VERSION=${PYTHON_VERSION:-3.11}

ensure_uv() {
    if ! command -v uv >/dev/null 2>&1; then
        python3 -m pip install --quiet --disable-pip-version-check uv >&2
    fi
}

# ensure_venv AIRFLOW_VERSION: create .venvs/airflow-VERSION with the provider and its test extra;
# prints the venv's path.
ensure_venv() {
    local version=$1 venv=".venvs/airflow-$1"
    ensure_uv
    if [ ! -x "$venv/bin/python" ]; then
        uv venv --quiet --python "$PYTHON_VERSION" "$venv" >&2
    fi
    uv pip install --quiet --python "$venv/bin/python" -e ".[test]" "apache-airflow[celery,postgres]==$version" >&2
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
