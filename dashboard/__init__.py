"""The gridpulse web dashboard (issue 14): its own process (``gridpulse dashboard``), reading the
output topics without a consumer group, Redis snapshots and the alert store; a JSON API, a
Server-Sent Events stream and the static pages of ``dashboard/web``."""
