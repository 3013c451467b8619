-- casework's event store lives beside Temporal's databases, in a database of its own.
CREATE USER casework WITH PASSWORD 'casework';
CREATE DATABASE casework OWNER casework;
