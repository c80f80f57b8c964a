"""The electronic archive: sealing a finished dossier into a timestamped package, verifying it (also offline),
renewing its timestamp, serving its files once minimisation dropped them, and the operators' view of it."""
