CREATE INDEX "leads_owner_id_name_id" ON "leads" ("owner_id", "name", "id");
CREATE INDEX "opportunities_owner_id_name_id" ON "opportunities" ("owner_id", "name", "id");
