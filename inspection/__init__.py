"""Inspection (营业稽查, 反窃电): area line loss, screening rules and suspects; pure (DOMAIN.md 6)."""
