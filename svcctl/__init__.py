"""svcctl: where does a request to this Service go, and why is my Pod not behind it?"""

__version__ = "0.1.0"
API_VERSION = "svcctl/v1"
