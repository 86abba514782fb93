/* placeholder: filled in by its owner */
typedef int ferry_manifest_placeholder;
