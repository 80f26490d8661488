"""An example Django project audited by auditmw."""
