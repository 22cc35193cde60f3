"""Output formats of a Document: JSON, text, hOCR and the visualisation image."""
