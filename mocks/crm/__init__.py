"""Salesforce-compatible CRM mock (REST `/services/data/vNN.0/...`, a SOQL subset, change events)."""
