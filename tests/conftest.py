pytest_plugins = ["tests.kubefake.pytest_plugin"]
