"""One ComponentResource per part of the platform; each takes a typed args dataclass."""
