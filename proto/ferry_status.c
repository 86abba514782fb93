/* placeholder: filled in by its owner */
typedef int ferry_status_placeholder;
