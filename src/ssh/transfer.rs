//! Streaming file transfers over SFTP, for beam.
