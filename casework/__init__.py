"""casework: an event-sourced workflow engine for the customer-service process."""
