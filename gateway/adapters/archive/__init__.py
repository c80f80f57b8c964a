"""The electronic archive's partners and storage: the TSA, OCSP/CRL (through pyHanko), BagIt bags, the folder."""

QUEUE = "archive"
BUILD = "archive.build"  # seal the package of a dossier that reached a final status
RENEW = "archive.renew"  # add an archive timestamp over the chain before its TSA certificate ends
