//! MLflow: runs on a tracking server over its REST API, and MLmodel directories.
