"""gridpulse: real-time metering and customer-risk platform for power-supply companies."""

__version__ = "0.1.0"
