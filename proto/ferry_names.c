/* placeholder: filled in by its owner */
typedef int ferry_names_placeholder;
