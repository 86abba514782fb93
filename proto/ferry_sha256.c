/* placeholder: filled in by its owner */
typedef int ferry_sha256_placeholder;
