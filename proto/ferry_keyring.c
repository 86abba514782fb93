/* placeholder: filled in by its owner */
typedef int ferry_keyring_placeholder;
