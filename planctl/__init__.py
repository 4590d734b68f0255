"""planctl: typed remediation plans, evidence bundles and generated ledgers."""

__version__ = "0.1.0"
