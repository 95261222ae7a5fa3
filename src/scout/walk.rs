//! Walking remote directory trees over SFTP, for tree and find.
