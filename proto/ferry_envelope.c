/* placeholder: filled in by its owner */
typedef int ferry_envelope_placeholder;
