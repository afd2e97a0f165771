"""The MQTT bridge: a board carries its rings' sync traffic to a broker, so that meshes out of
radio range of each other still meet (issue 18)."""
