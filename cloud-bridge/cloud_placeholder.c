typedef int cloud_placeholder;
