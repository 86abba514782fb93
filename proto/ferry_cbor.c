/* placeholder: filled in by its owner */
typedef int ferry_cbor_placeholder;
